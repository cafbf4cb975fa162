/**
 * The mock homeserver's memory over a long to-device run: 100,000 `sendToDevice` calls in process
 * on a `ManualClock` advancing a minute per 1,000 sends, heap measured after a forced GC before and
 * after (the transaction ids a device used are forgotten after 30 minutes, as on Synapse).
 *
 * Run: `node --expose-gc --import tsx bench/mock-txn-heap.ts` (`BENCH_SENDS` to change the count).
 */
import { createMockHomeserver, ManualClock } from "../src/testing/index.js";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with node --expose-gc");
const sends = Number(process.env.BENCH_SENDS ?? 100_000);

const clock = new ManualClock();
const hs = createMockHomeserver({ clock });
const alice = hs.control.createUser("alice");
if (alice === undefined) throw new Error("no account");
const headers = new Headers({ authorization: `Bearer ${alice.accessToken}` });
// To nobody, so only the transaction ids can pile up.
const body = new TextEncoder().encode('{"messages":{}}');

async function send(prefix: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const outcome = await hs.handle({
      method: "PUT",
      url: `/_matrix/client/v3/sendToDevice/m.test/${prefix}-${i}`,
      headers,
      body,
    });
    if (outcome.kind !== "response" || outcome.status !== 200) throw new Error(`send ${i} failed`);
    if ((i + 1) % 1000 === 0) await clock.advance(60_000);
  }
  // Past the 30 minutes, then one more send so the expired ids are dropped.
  await clock.advance(31 * 60_000);
  await sendOne(prefix);
}

async function sendOne(prefix: string): Promise<void> {
  await hs.handle({
    method: "PUT",
    url: `/_matrix/client/v3/sendToDevice/m.test/${prefix}-last`,
    headers,
    body,
  });
}

function heapMb(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed / 1e6;
}

await send("warm-up", 20_000);
const before = heapMb();
await send("run", sends);
const after = heapMb();
console.log(
  `${sends} sends: heap ${before.toFixed(1)} MB -> ${after.toFixed(1)} MB (${(after - before).toFixed(2)} MB), ` +
    `transaction ids held at the end: ${hs.state.toDevice.transactionCount}`,
);
