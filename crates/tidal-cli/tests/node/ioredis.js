// ioredis as an application uses it, against two nodes of one tidal
// cluster: `node ioredis.js HOST:PORT HOST:PORT`. Prints one JSON line per
// step; the Rust test compares them.
const Redis = require("ioredis");

function connect(addr) {
  const [host, port] = addr.split(":");
  return new Redis({ host, port: Number(port), maxRetriesPerRequest: 2 });
}

async function main() {
  const r = connect(process.argv[2]);
  const other = connect(process.argv[3]);
  const out = (step, value) => console.log(JSON.stringify({ step, value }));

  // multi(): MULTI ... EXEC, replies as [err, value] pairs.
  out("multi", await r.multi().set("{cart}items", 3).incr("{cart}items").get("{cart}items").exec());

  // A transaction queued with a wrong argument count is refused whole.
  try {
    await r.multi().set("{cart}items", 9).call("GET").exec();
    out("execabort", "applied");
  } catch (e) {
    out("execabort", e.message.split(" ")[0]);
  }
  out("after-abort", await r.get("{cart}items"));

  // WATCH, a write by another client, then EXEC: null, nothing applied.
  await r.watch("{cart}items");
  const n = Number(await r.get("{cart}items"));
  await other.set("{cart}items", 100);
  out("watch-conflict", await r.multi().set("{cart}items", n + 1).exec());
  out("after-conflict", await r.get("{cart}items"));

  // pipeline(): plain pipelining, no transaction.
  out("pipeline", await r.pipeline().hset("h", "a", 1, "b", 2).hgetall("h").rpush("l", "x", "y").lrange("l", 0, -1).exec());

  // hgetall's object, sorted sets with scores.
  await r.zadd("z", 2, "b", 1, "a", 3, "c");
  out("zrange", await r.zrange("z", 0, -1, "WITHSCORES"));
  out("hgetall", await r.hgetall("h"));
  out("smembers", (await (r.sadd("s", "q", "p"), r.smembers("s"))).sort());

  // A blocked pop answered by a push through another node.
  const blocked = r.blpop("jobs", 5);
  setTimeout(() => other.lpush("jobs", "job-1"), 200);
  out("blpop", await blocked);
  out("blpop-timeout", await r.blpop("nothing-here", 0.2));

  r.disconnect();
  other.disconnect();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
