/**
 * The S3 face with the clients users have, against a real pair: aws-cli 1.x
 * (checksum trailers by default) and 2, rclone, s3cmd and boto3, each when
 * installed (skipped, saying so, when not). Every byte read back is compared
 * with what was written; the native API reads the same objects as
 * `bucket/key`; after a CP the destination's S3 port serves the same bytes
 * and refuses writes with 403 AccessDenied.
 */
import assert from "node:assert/strict";
import { adminCp, call } from "../mirror/pair.ts";
import { withTempDir } from "../support/appliance.ts";
import {
  awsEnv,
  CREDS,
  type Pair,
  run,
  runOk,
  sameFile,
  spawnS3Pair,
  versionOf,
  writeTree,
} from "./helpers.ts";

const AWS1 = "aws";
const AWS2 = "/usr/bin/aws";

Deno.test("s3 clients: aws-cli, rclone, s3cmd and boto3 against a pair", async (t) => {
  await withTempDir("refsync-s3-clients-", async (dir) => {
    const pair: Pair = await spawnS3Pair(dir);
    try {
      const src = pair.src.s3Url!;
      const dst = pair.dst.s3Url!;
      const env = awsEnv(dir);
      const files = `${dir}/files`;
      await Deno.mkdir(files);
      const big = `${files}/big.bin`;
      const bytes = new Uint8Array(20 << 20);
      for (let i = 0; i < bytes.length; i += 4096) {
        crypto.getRandomValues(bytes.subarray(i, i + 4096));
      }
      await Deno.writeFile(big, bytes);
      const tree = `${dir}/tree`;
      const names = await writeTree(tree, 41, 0x5eed);

      const v1 = await versionOf(AWS1);
      await t.step({
        name: `aws-cli 1.x: mb, multipart cp, sync of 41 files, ls --recursive, cp back (${v1})`,
        ignore: v1 === null || !v1.startsWith("aws-cli/1."),
        fn: async () => {
          const aws = (...args: string[]) => runOk(AWS1, ["--endpoint-url", src, ...args], env);
          await aws("s3", "mb", "s3://bkt");
          await aws("s3", "cp", big, "s3://bkt/big.bin");
          await aws("s3", "sync", tree, "s3://bkt/tree");
          const ls = await runOk(AWS1, [
            "--endpoint-url",
            src,
            "s3",
            "ls",
            "--recursive",
            "s3://bkt",
          ], env);
          const listed = ls.stdout.trim().split("\n").map((l) =>
            l.trim().split(/\s+/).slice(3).join(" ")
          );
          assert.deepEqual(listed, ["big.bin", ...names.map((n) => `tree/${n}`)]);
          await aws("s3", "cp", "s3://bkt/big.bin", `${dir}/big.back`);
          assert.ok(await sameFile(big, `${dir}/big.back`), "20 MiB multipart object read back");
          await aws("s3", "sync", "s3://bkt/tree", `${dir}/tree.back`);
          for (const n of names) {
            assert.ok(await sameFile(`${tree}/${n}`, `${dir}/tree.back/${n}`), n);
          }
          // The multipart ETag is S3's: the MD5 of the part MD5s, with the part count.
          const head = await runOk(AWS1, [
            "--endpoint-url",
            src,
            "s3api",
            "head-object",
            "--bucket",
            "bkt",
            "--key",
            "big.bin",
          ], env);
          assert.match(JSON.parse(head.stdout).ETag, /^"[0-9a-f]{32}-\d+"$/);
          // The native API reads the same object as bucket/key.
          const native = await call(`${pair.src.url}/v1/objects/bkt/big.bin`);
          assert.equal(native.status, 200);
          assert.equal(native.bytes.length, bytes.length);
          assert.ok(native.bytes.every((b, i) => b === bytes[i]), "native bytes");
        },
      });

      const v2 = await versionOf(AWS2);
      await t.step({
        name: `aws-cli 2: cp up and down (${v2})`,
        ignore: v2 === null || !v2.startsWith("aws-cli/2."),
        fn: async () => {
          const aws = (...args: string[]) => runOk(AWS2, ["--endpoint-url", src, ...args], env);
          await run(AWS2, ["--endpoint-url", src, "s3", "mb", "s3://bkt"], env); // may exist already
          await aws("s3", "cp", big, "s3://bkt/v2/big.bin");
          await aws("s3", "cp", `${tree}/${names[0]}`, "s3://bkt/v2/small");
          await aws("s3", "cp", "s3://bkt/v2/big.bin", `${dir}/big.v2`);
          await aws("s3", "cp", "s3://bkt/v2/small", `${dir}/small.v2`);
          assert.ok(await sameFile(big, `${dir}/big.v2`));
          assert.ok(await sameFile(`${tree}/${names[0]}`, `${dir}/small.v2`));
        },
      });

      const rclone = await versionOf("rclone", ["version"]);
      await t.step({
        name: `rclone: copy, then check (MD5 ETags) is clean (${rclone})`,
        ignore: rclone === null,
        fn: async () => {
          const renv = {
            HOME: dir,
            RCLONE_CONFIG: `${dir}/rclone.conf`,
            RCLONE_CONFIG_REFS_TYPE: "s3",
            RCLONE_CONFIG_REFS_PROVIDER: "Other",
            RCLONE_CONFIG_REFS_ACCESS_KEY_ID: CREDS.accessKey,
            RCLONE_CONFIG_REFS_SECRET_ACCESS_KEY: CREDS.secretKey,
            RCLONE_CONFIG_REFS_ENDPOINT: src,
            RCLONE_CONFIG_REFS_FORCE_PATH_STYLE: "true",
          };
          await run("rclone", ["mkdir", "refs:rcl"], renv);
          await runOk("rclone", ["copy", tree, "refs:rcl/tree"], renv);
          await runOk("rclone", ["copy", big, "refs:rcl"], renv);
          const check = await runOk("rclone", ["check", tree, "refs:rcl/tree"], renv);
          assert.match(check.stderr, /0 differences found/);
          assert.doesNotMatch(check.stderr, /hashes could not be checked/);
          await runOk("rclone", ["check", files, "refs:rcl", "--exclude", "tree/**"], renv);
        },
      });

      const s3cmd = await versionOf("s3cmd");
      await t.step({
        name: `s3cmd: mb, put, ls, get (${s3cmd})`,
        ignore: s3cmd === null,
        fn: async () => {
          const host = new URL(src).host;
          const cfg = `${dir}/s3cmd.cfg`;
          await Deno.writeTextFile(
            cfg,
            `[default]\naccess_key = ${CREDS.accessKey}\nsecret_key = ${CREDS.secretKey}\n` +
              `host_base = ${host}\nhost_bucket = ${host}\nuse_https = False\nsignature_v2 = False\n`,
          );
          const s = (...args: string[]) => runOk("s3cmd", ["-c", cfg, ...args], { HOME: dir });
          await s("mb", "s3://s3c");
          await s("put", `${tree}/${names[1]}`, "s3://s3c/one");
          await s("put", big, "s3://s3c/big"); // s3cmd uploads files over 15 MiB in parts
          const ls = await s("ls", "s3://s3c");
          assert.match(ls.stdout, /s3:\/\/s3c\/one/);
          await s("get", "s3://s3c/big", `${dir}/big.s3cmd`);
          assert.ok(await sameFile(big, `${dir}/big.s3cmd`));
        },
      });

      const py = await versionOf("python3", ["-c", "import boto3; print(boto3.__version__)"]);
      await t.step({
        name:
          `boto3: delimiters, paging, copy, ranges, presigned GET, errors, batch delete (${py})`,
        ignore: py === null,
        fn: async () => {
          const script = `${dir}/boto.py`;
          await Deno.writeTextFile(script, BOTO_SCRIPT);
          const r = await runOk("python3", [script, src, CREDS.accessKey, CREDS.secretKey], env);
          const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
          assert.deepEqual(out.commonPrefixes, ["d/a/", "d/b/"]);
          assert.deepEqual(out.topKeys, ["d/top"]);
          assert.equal(out.pages, 5, "13 keys in pages of 3");
          assert.equal(out.paged, 13);
          assert.equal(out.copied, "copy me");
          assert.equal(out.copyEtag, out.srcEtag);
          assert.equal(out.range, "py m");
          assert.equal(out.rangeStatus, 206);
          assert.equal(out.presigned, "copy me");
          assert.equal(out.wrongSecret, "SignatureDoesNotMatch");
          assert.equal(out.wrongSecretStatus, 403);
          assert.equal(out.missing, 404);
          assert.deepEqual(out.deleted, ["d/a/1", "d/a/2"]);
          assert.deepEqual(out.afterDelete, ["d/b/1", "d/top"]);
        },
      });

      await t.step(
        "after a CP the destination serves the same bytes and refuses writes",
        async () => {
          await adminCp(pair.src);
          const v = v1 ?? v2;
          assert.ok(v !== null, "some aws-cli is installed");
          const aws = v1 ? AWS1 : AWS2;
          const key = v1 ? "s3://bkt/big.bin" : "s3://bkt/v2/big.bin";
          await runOk(aws, [
            "--endpoint-url",
            dst,
            "s3",
            "cp",
            key,
            `${dir}/big.dst`,
          ], env);
          assert.ok(await sameFile(big, `${dir}/big.dst`), "the destination's bytes");
          const put = await run(aws, [
            "--endpoint-url",
            dst,
            "s3",
            "cp",
            `${tree}/${names[0]}`,
            "s3://bkt/nope",
          ], env);
          assert.notEqual(put.code, 0);
          assert.match(put.stderr, /AccessDenied/);
        },
      );
    } finally {
      await pair.stop();
    }
  });
});

/** boto3 against the source; prints one JSON line of results. */
const BOTO_SCRIPT = `
import json, sys, urllib.request, urllib.error
import boto3, botocore
from botocore.config import Config
endpoint, ak, sk = sys.argv[1:4]
def client(secret):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=secret,
                        region_name="us-east-1", config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
s3 = client(sk)
out = {}
s3.create_bucket(Bucket="boto")
for k in ["d/a/1", "d/a/2", "d/b/1", "d/top"]:
    s3.put_object(Bucket="boto", Key=k, Body=b"x")
r = s3.list_objects_v2(Bucket="boto", Prefix="d/", Delimiter="/")
out["commonPrefixes"] = [p["Prefix"] for p in r.get("CommonPrefixes", [])]
out["topKeys"] = [o["Key"] for o in r.get("Contents", [])]
for i in range(9):
    s3.put_object(Bucket="boto", Key="p/%02d" % i, Body=b"y")
pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket="boto", PaginationConfig={"PageSize": 3}))
out["pages"] = len(pages)
out["paged"] = sum(len(p.get("Contents", [])) for p in pages)
src = s3.put_object(Bucket="boto", Key="src", Body=b"copy me", ContentType="text/plain")
c = s3.copy_object(Bucket="boto", Key="dst", CopySource={"Bucket": "boto", "Key": "src"})
out["copyEtag"] = c["CopyObjectResult"]["ETag"]
out["srcEtag"] = src["ETag"]
out["copied"] = s3.get_object(Bucket="boto", Key="dst")["Body"].read().decode()
g = s3.get_object(Bucket="boto", Key="src", Range="bytes=2-5")
out["range"] = g["Body"].read().decode()
out["rangeStatus"] = g["ResponseMetadata"]["HTTPStatusCode"]
url = s3.generate_presigned_url("get_object", Params={"Bucket": "boto", "Key": "dst"}, ExpiresIn=300)
out["presigned"] = urllib.request.urlopen(url, timeout=30).read().decode()
try:
    client("wrong-secret").list_objects_v2(Bucket="boto")
except botocore.exceptions.ClientError as e:
    out["wrongSecret"] = e.response["Error"]["Code"]
    out["wrongSecretStatus"] = e.response["ResponseMetadata"]["HTTPStatusCode"]
try:
    s3.get_object(Bucket="boto", Key="missing")
except botocore.exceptions.ClientError as e:
    out["missing"] = e.response["ResponseMetadata"]["HTTPStatusCode"]
d = s3.delete_objects(Bucket="boto", Delete={"Objects": [{"Key": "d/a/1"}, {"Key": "d/a/2"}]})
out["deleted"] = sorted(x["Key"] for x in d.get("Deleted", []))
out["afterDelete"] = [o["Key"] for o in s3.list_objects_v2(Bucket="boto", Prefix="d/")["Contents"]]
print(json.dumps(out))
`;
