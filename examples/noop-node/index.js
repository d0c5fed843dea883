// noop-node: the benchmark function; answers 200 "ok" and does nothing else.
'use strict';

const OK = { statusCode: 200, body: 'ok' };

exports.handler = async () => OK;
