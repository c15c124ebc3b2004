// Preload for NNI's Node.js manager (NODE_OPTIONS="--require <this file>"): every TCP server
// that is given no host listens on 127.0.0.1 instead of all interfaces. NNI 3.0 has no option
// for this (its REST server calls app.listen(port)).
'use strict';
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    if (typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1');
  } else if (first && typeof first === 'object' && first.path === undefined && !first.host) {
    args[0] = { ...first, host: '127.0.0.1' };
  }
  return listen.apply(this, args);
};
