// hello-node: answers {"message": "hello NAME"}.
//
// Called through the gateway (GET /hello-node/{name}) it receives an API Gateway HTTP API v2.0
// event and answers a v2.0 result; invoked directly with {"name": "..."} it answers the bare
// message.
'use strict';

const greeting = (name) => ({ message: `hello ${name || 'world'}` });

exports.handler = async (event) => {
  const e = event && typeof event === 'object' ? event : {};
  if (e.requestContext) { // an HTTP request routed by the gateway
    return {
      statusCode: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(greeting(e.pathParameters && e.pathParameters.name)),
    };
  }
  return greeting(e.name);
};
