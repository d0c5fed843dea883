// The no-op worker: Cloudflare's runtime answering "hello", the same work as nimbus's no-op
// functions and the limit server.
export default {
  async fetch(request) {
    return new Response("hello");
  },
};
