// Loaded and invoked once by a primed runtime while it waits for its function (see warmUp in
// ../bootstrap), so the module loader and the invocation path are compiled before a request
// waits on them. It is never a function's handler.
'use strict';

exports.handler = async (event, context) => ({ statusCode: 200, body: JSON.stringify({ event, id: context.awsRequestId }) });
