// Publishes socket.io emits with the real @socket.io/redis-emitter package
// over the real `redis` client, exactly as an existing Node.js app would.
//
// usage: node emit.mjs REDIS_URL JSON
//   JSON: [{"to": [rooms], "except": [rooms], "event": "name", "args": [...]}, ...]
//   {"$date": MS} anywhere in args becomes new Date(MS) (a MessagePack timestamp).
// Prints "done" once every emit is published (the client waits for Redis'
// reply to each PUBLISH before quitting).
import { createClient } from "redis";
import { Emitter } from "@socket.io/redis-emitter";

const [url, json] = process.argv.slice(2);
const ops = JSON.parse(json);
const revive = (v) => {
  if (Array.isArray(v)) return v.map(revive);
  if (v && typeof v === "object") {
    if ("$date" in v) return new Date(v.$date);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, revive(x)]));
  }
  return v;
};

const client = createClient({ url });
client.on("error", (e) => {
  console.error(`redis client error: ${e}`);
  process.exit(1);
});
await client.connect();
const emitter = new Emitter(client);
for (const op of ops) {
  let target = emitter;
  for (const r of op.to ?? []) target = target.to(r);
  for (const r of op.except ?? []) target = target.except(r);
  target.emit(op.event, ...(op.args ?? []).map(revive));
}
// quit() sends QUIT after the queued PUBLISH commands and resolves when
// Redis has answered them all.
await client.quit();
console.log("done");
