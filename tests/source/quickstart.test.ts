/**
 * The README's new-user path, with a real process and the real `curl`:
 * start a source on a fresh data dir, `curl -T FILE URL/v1/objects/a`, then
 * `curl URL/v1/objects/a` gives back the same bytes.
 *
 * (The README's quick start is `deno task start` on fixed ports 8080/8081;
 * a test never binds fixed ports, so it runs `src/main.ts source --port 0`.)
 *
 * @module
 */
import { firstDifference } from "../support/bytes.ts";
import assert from "node:assert/strict";
import { spawnSource, withTempDir } from "../support/appliance.ts";
import { etagHex, etagValue } from "../support/blake3.ts";
import { request } from "../support/http.ts";
import { Prng, testSeed, withSeed } from "../support/prng.ts";

/** The curl binary, or null when the machine has none. */
async function findCurl(): Promise<string | null> {
  for (const p of ["/usr/bin/curl", "/usr/local/bin/curl", "/bin/curl"]) {
    try {
      if ((await Deno.stat(p)).isFile) return p;
    } catch {
      // Not there.
    }
  }
  return null;
}

async function curl(
  bin: string,
  args: string[],
): Promise<{ code: number; stdout: Uint8Array; stderr: string }> {
  const out = await new Deno.Command(bin, {
    args: ["--silent", "--show-error", "--max-time", "30", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: out.stdout, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("quick start: curl -T a file, curl it back, same bytes", async () => {
  const seed = testSeed(0x9c1c57a7);
  await withSeed(seed, "quickstart", () =>
    withTempDir("refsync-quickstart-", async (tmp) => {
      // A file that is not a multiple of 4 KiB and spans more than one log record (1 MiB).
      const content = new Prng(seed).bytes(2 * (1 << 20) + 12_345);
      const file = `${tmp}/upload.bin`;
      await Deno.writeFile(file, content);
      const src = await spawnSource(`${tmp}/data`);
      try {
        const url = `${src.url}/v1/objects/a`;
        const bin = await findCurl();
        let got: Uint8Array;
        if (bin) {
          // Step 1: upload with curl -T (PUT with Content-Length).
          const put = await curl(bin, ["-T", file, "--write-out", "\n%{http_code}", url]);
          assert.equal(put.code, 0, `curl -T failed: ${put.stderr}`);
          const lines = new TextDecoder().decode(put.stdout).trim().split("\n");
          const status = Number(lines.pop());
          assert.equal(status, 201, `curl -T: HTTP ${status}: ${lines.join("\n")}`);
          const body = JSON.parse(lines.join("\n"));
          assert.equal(body.key, "a");
          assert.equal(body.size, content.length);
          assert.equal(body.etag, etagHex(content), "PUT etag is the ETag of the file");
          // Step 2: download with curl.
          const get = await curl(bin, ["--fail", url]);
          assert.equal(get.code, 0, `curl GET failed: ${get.stderr}`);
          got = get.stdout;
        } else {
          console.warn("quickstart: no curl binary on this machine; using fetch");
          const put = await request(url, { method: "PUT", body: content });
          assert.equal(put.status, 201, put.text);
          got = (await request(url)).bytes;
        }
        const diff = firstDifference(got, content);
        assert.equal(
          diff,
          -1,
          `downloaded ${got.length} bytes, uploaded ${content.length}; first difference at ${diff}`,
        );
        // The ETag header agrees with an independent BLAKE3.
        const head = await request(url, { method: "HEAD" });
        assert.equal(head.status, 200);
        assert.equal(etagValue(head.headers.get("ETag")), etagHex(content));
        assert.equal(head.headers.get("Content-Length"), String(content.length));
      } finally {
        await src.kill();
      }
    }));
});
