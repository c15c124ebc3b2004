"""Scoring: the one choke point (:func:`score_record`), cache keys, many-at-once scoring, the
:class:`Evaluator` role for composite scores (ensembles, supernets), ``zcnas bench`` and
concurrent scoring of many small nets (:func:`throughput`).

Layer: above ``proxies``, ``spaces``, ``storage`` and ``data``; below ``ensembles``,
``analysis`` and ``search``.
"""

from zcnas.scoring._bench import bench
from zcnas.scoring._bench import format_report as format_bench
from zcnas.scoring._device import resolve_device
from zcnas.scoring._evaluator import EVALUATORS
from zcnas.scoring._evaluator import TAGS
from zcnas.scoring._evaluator import Evaluator
from zcnas.scoring._evaluator import Scorable
from zcnas.scoring._evaluator import is_evaluator
from zcnas.scoring._evaluator import list_scorers
from zcnas.scoring._evaluator import params_json
from zcnas.scoring._evaluator import register_evaluator
from zcnas.scoring._evaluator import resolve
from zcnas.scoring._evaluator import tag
from zcnas.scoring._keys import batch_key
from zcnas.scoring._keys import score_key
from zcnas.scoring._many import score_many
from zcnas.scoring._many import stored_records
from zcnas.scoring._score import compute_score
from zcnas.scoring._score import failed_record
from zcnas.scoring._score import finish_record
from zcnas.scoring._score import fresh_model
from zcnas.scoring._score import isolated_rng
from zcnas.scoring._score import score
from zcnas.scoring._score import score_model
from zcnas.scoring._score import score_model_record
from zcnas.scoring._score import score_record
from zcnas.scoring._throughput import MODES as THROUGHPUT_MODES
from zcnas.scoring._throughput import format_throughput
from zcnas.scoring._throughput import score_overlapped
from zcnas.scoring._throughput import score_processes
from zcnas.scoring._throughput import score_serial
from zcnas.scoring._throughput import throughput


__all__ = [
    "EVALUATORS", "Evaluator", "Scorable", "TAGS", "THROUGHPUT_MODES", "batch_key", "bench",
    "compute_score", "failed_record", "finish_record", "format_bench", "format_throughput",
    "fresh_model", "is_evaluator", "isolated_rng", "list_scorers", "params_json",
    "register_evaluator", "resolve", "resolve_device", "score", "score_key", "score_many",
    "score_model", "score_model_record", "score_overlapped", "score_processes", "score_record",
    "score_serial", "stored_records", "tag", "throughput",
]
