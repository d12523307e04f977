/**
 * The headers of a compressed link request.
 *
 * @module
 */

/** The link epoch a stream-compressed request belongs to (a fresh id per source connection). */
export const LINK_HEADER = "Refsync-Link";
/** Its place in the epoch's stream: 0, 1, 2, ... with no gap. */
export const SEQ_HEADER = "Refsync-Seq";
/**
 * The bytes a compressed body decodes to. A corrupted body can decode short
 * (a block cut off waits for input that never comes) rather than fail; the
 * announced length catches it, and bounds what the decoder may produce.
 */
export const RAW_LENGTH_HEADER = "Refsync-Raw-Length";
/**
 * On the destination's answer to a log batch of the log stream: the ms it
 * spent receiving the request (from its first bytes to its last), which is
 * how the source's level policy measures the link (./level.ts).
 */
export const RECEIVE_MS_HEADER = "Refsync-Receive-Ms";
