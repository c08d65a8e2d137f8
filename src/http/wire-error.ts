/** The one error the wire layer throws for bytes or values it will not accept. */

/**
 * A frame or JSON message that cannot be decoded or fails validation, or a message that cannot
 * be encoded. `message` is short and names the problem (it is sent back in a 400 answer).
 */
export class WireError extends Error {
  override name = "WireError";
}
