/** Failures of the fake smolvm, shaped like the real one's. */

/** A usage error: clap-style `error: …`, exit 2. */
export class Usage extends Error {}
/** A smolvm runtime error: `Error: …`, exit 1. */
export class Fail extends Error {}
