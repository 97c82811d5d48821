// Self-test of the Fedify test peer: starts two peers (A and B) on loopback,
// A follows B, B posts a note, A unfollows; checks each step through the
// control API.  Run with: ./run.sh selftest   (after ./install.sh)
// Ports: SELFTEST_PORT_A / SELFTEST_PORT_B (default 18301 / 18302).
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const ports = [
  Number(process.env.SELFTEST_PORT_A ?? 18301),
  Number(process.env.SELFTEST_PORT_B ?? 18302),
];
const [A, B] = ports.map((p) => `http://127.0.0.1:${p}`);
const children = [];
let passed = 0, failed = 0;

function startPeer(port) {
  const child = spawn(process.execPath, [`${here}peer.mjs`], {
    env: { ...process.env, PEER_LISTEN: String(port), PEER_ORIGIN: `http://127.0.0.1:${port}` },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout.on("data", (d) => process.stdout.write(d));
  child.stderr.on("data", (d) => process.stderr.write(d));
  children.push(child);
  return new Promise((resolve, reject) => {
    child.stdout.on("data", (d) => d.toString().includes("listening on") && resolve());
    child.on("exit", (code) => reject(new Error(`peer on ${port} exited with ${code}`)));
    setTimeout(() => reject(new Error(`peer on ${port} did not start in 20s`)), 20000);
  });
}
const call = async (base, path, body) => {
  const res = await fetch(`${base}/_control/${path}`, body === undefined ? {} : {
    method: "POST", body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
};
async function waitFor(name, fn, ms = 10000) {
  const until = Date.now() + ms;
  let last;
  while (Date.now() < until) {
    try {
      last = await fn();
      if (last === true) break;
    } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 100));
  }
  if (last === true) { passed++; console.log(`ok - ${name}`); }
  else { failed++; console.log(`not ok - ${name} (${last})`); }
}

try {
  await Promise.all(ports.map(startPeer));
  await call(A, "follow", { target: `${B}/users/peer` });
  await waitFor("B lists A as follower", async () =>
    (await call(B, "state")).followers.includes(`${A}/users/peer`));
  await waitFor("A follows B after Accept", async () =>
    (await call(A, "state")).following.includes(`${B}/users/peer`));
  const { id } = await call(B, "note", { content: "<p>selftest note</p>", to: "public" });
  await waitFor("A received B's Create(Note)", async () =>
    (await call(A, "state")).received.some((r) =>
      r.type === "Create" && r.objectId === id && r.content === "<p>selftest note</p>"));
  await call(A, "unfollow", { target: `${B}/users/peer` });
  await waitFor("B removed A after Undo(Follow)", async () =>
    (await call(B, "state")).followers.length === 0);
} catch (e) {
  failed++;
  console.log(`not ok - ${e?.stack ?? e}`);
} finally {
  for (const c of children) c.kill("SIGTERM");
}
console.log(`ap-peer selftest: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
