// Calls a flask-rpcenable endpoint with jayson's HTTP client; prints what came back as JSON.
// Usage: node client.js URL  (test_node_client.py reads the printed object)
"use strict";
const jayson = require("jayson");

const client = jayson.client.http(process.argv[2]);

function request(method, params) {
  return new Promise((resolve, reject) => {
    client.request(method, params, (err, response) => (err ? reject(err) : resolve(response)));
  });
}

function batch(requests) {
  return new Promise((resolve, reject) => {
    client.request(requests, (err, errors, successes) => {
      if (err) reject(err);
      else resolve({ errors: errors || [], successes: successes || [] });
    });
  });
}

function notify(method, params) {
  return new Promise((resolve, reject) => {
    client.request(method, params, null, (err, response) =>
      err ? reject(err) : resolve(response === undefined ? null : response));
  });
}

(async () => {
  const out = {};
  out.positional = await request("subtract", [42, 23]);
  out.named = await request("subtract", { subtrahend: 23, minuend: 42 });
  out.missing = await request("foobar", []);
  out.notification = await notify("update", [1, 2, 3]);
  out.batch = await batch([
    client.request("sum", [1, 2, 4], undefined, false),
    client.request("get_data", [], undefined, false),
    client.request("foobar", [], undefined, false),
  ]);
  out.discover = await request("rpc.discover", []);
  process.stdout.write(JSON.stringify(out));
})().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err));
  process.exit(1);
});
