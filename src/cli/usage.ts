/**
 * The `--help` text.
 *
 * @module
 */
import { LOG_LEVELS } from "../logging/mod.ts";
import { DEFAULTS } from "./args.ts";

const LEVELS = LOG_LEVELS.join(", ");

/** Usage of every command and flag, with the defaults. */
export const USAGE = `refsync: synchronous edge mirroring that ships references, not bytes

usage:
  refsync pair    [--data DIR] [--host H] [--source-port P] [--dest-port P] [--token T]
                  [--cp-sync refs|full] [--sync-timeout MS] [--sync-policy P] [--source-s3-port P]
                  [--dest-s3-port P] [--repl-port P] [S3 flags] [client flags] [store flags]
                  [--log-level L]
                  both appliances in one process: a destination in DIR/dest and a source
                  in DIR/source mirroring to it (default DIR ./data, ports ${DEFAULTS.sourcePort} and ${DEFAULTS.destPort})
  refsync source  [--host H] [--port P] [--data DIR] [--dest URL] [--token T] [--cp-sync refs|full]
                  [--sync-timeout MS] [--sync-policy P] [--verify-interval D] [--dest-log-port P]
                  [S3 flags]
                  [client flags] [store flags] [--log-level L]
  refsync dest    [--host H] [--port P] [--data DIR] [--token T] [--repl-port P] [--rejoin]
                  [S3 flags]
                  [client flags] [store flags] [--log-level L]
  refsync promote --url DEST_URL --token T
  refsync verify  --data DIR       offline check of a stopped appliance's committed CP

appliance flags:
  --host H                 address to listen on (default ${DEFAULTS.host})
  --port P                 port, 0 for any free one (default ${DEFAULTS.sourcePort} source, ${DEFAULTS.destPort} dest)
  --source-port P          pair: the source's port (default ${DEFAULTS.sourcePort})
  --dest-port P            pair: the destination's port (default ${DEFAULTS.destPort})
  --source-s3-port P       pair: the source's S3 port (default ${DEFAULTS.sourceS3Port})
  --dest-s3-port P         pair: the destination's S3 port (default ${DEFAULTS.destS3Port})
  --data DIR               data directory (default ./data/source, ./data/dest; pair ./data)
  --token T                pair token: replication and every admin POST (default REFSYNC_TOKEN;
                           else generated once, printed once and kept in DIR/pair-token)
  --dest URL               source: the destination; without it the source runs alone
  --sync-timeout MS        source: how long a write waits for the destination before 503
                           (default ${DEFAULTS.syncTimeoutMs})
  --sync-policy P          source: strict (a write the destination does not confirm in time gets
                           503) or available (it is acknowledged locally, with the header
                           Refsync-Mirror: out-of-sync, and the mirror resyncs later) (default strict)
  --cp-sync refs|full      source: CP blocks as references where possible, or all as data
                           (default refs)
  --verify-interval D      source: compare both sides' committed CP block by block this often
                           (POST /v1/admin/verify; e.g. 6h, 30m; default 0: never)
  --repl-port P            dest: TCP port of the log stream, the source's log batches without an
                           HTTP request each (0: any free one, announced to the source; off:
                           none, batches come as HTTP requests) (default 0)
  --dest-log-port P        source: connect the log stream to this port of --dest's host rather
                           than the one the destination announces (a port mapping between
                           them); off: send log batches as HTTP requests. Never used with an
                           https:// --dest (the stream is not encrypted)
  --rejoin                 dest: DIR is an old source's (a promotion replaced it): it becomes the
                           destination of the promoted side, its divergent log set aside in
                           DIR/quarantine, caught up from the CP they share (a failback)
  --log-level L            ${LEVELS}: JSON log lines on stderr (default ${DEFAULTS.logLevel})

client flags:
  --client-token T         every object call must send Authorization: Bearer T (default
                           REFSYNC_CLIENT_TOKEN, else none; required when --host is not loopback)
  --insecure-open          allow a non-loopback --host without --client-token

store flags:
  --cp-interval MS         CP timer, 0 for none (default ${DEFAULTS.cpIntervalMs})
  --cp-dirty-bytes SIZE    CP when this much is dirty; writers wait at twice it (default 64MiB)
  --max-object-bytes SIZE  largest object (default 5GiB)
  --body-idle-timeout MS   cut a request body (408) or a read that makes no progress this long
                           (default ${DEFAULTS.bodyIdleTimeoutMs})
  --space-reserve SIZE     free disk space client writes leave to CPs and deletes (default 8MiB)

S3 flags (source and dest; pair opens both faces, on the ports above):
  --s3-port P              serve S3 on this port (0: any free port)
  --s3-access-key K        with --s3-secret-key S: the credentials (also REFSYNC_S3_ACCESS_KEY,
  --s3-secret-key S          REFSYNC_S3_SECRET_KEY); else generated, kept in DIR/s3-credentials
  --s3-upload-expiry MS    drop unfinished multipart uploads older than this (default 1 day)

Sizes take KiB, MiB, GiB suffixes. A data directory is used by one process at a time and
keeps its role: a destination's is started with dest (a promoted one with source).
Exit status: 0 done, 1 failed, 2 bad command line (with this text).`;
