/**
 * The `--help` text.
 *
 * @module
 */
import { DEFAULTS } from "./args.ts";

/** Usage of every command and flag. */
export const USAGE = `refsync: synchronous edge mirroring that ships references, not bytes

usage:
  refsync pair    [--data DIR] [--source-port P] [--dest-port P] [--token T]
                  [--source-s3-port P] [--dest-s3-port P] [S3 credentials] [store flags]
  refsync source  [--port P] [--host H] [--data DIR] [--dest URL --token T] [--cp-sync refs|full]
                  [--sync-timeout MS] [store flags]
  refsync dest    [--port P] [--host H] [--data DIR] [--token T] [store flags]
  refsync promote --url DEST_URL [--token T]
  refsync verify  --data DIR

store flags:
  --cp-interval MS         CP timer (default ${DEFAULTS.cpIntervalMs})
  --cp-dirty-bytes SIZE    CP when this much is dirty; writers wait at twice it (default 64MiB)
  --max-object-bytes SIZE  largest object (default 5GiB)

S3 face (source and dest; pair opens it on ${DEFAULTS.sourceS3Port} and ${DEFAULTS.destS3Port}):
  --s3-port P              serve S3 on this port (0: any free port)
  --s3-access-key K        with --s3-secret-key S: the credentials (also REFSYNC_S3_ACCESS_KEY,
  --s3-secret-key S          REFSYNC_S3_SECRET_KEY); else generated, kept in DIR/s3-credentials
  --s3-upload-expiry MS    drop unfinished multipart uploads older than this (default 1 day)

The token may also come from REFSYNC_TOKEN. Sizes take KiB, MiB, GiB suffixes.`;
