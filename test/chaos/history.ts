/**
 * The history a chaos run records and the linearizability checker decides: one register per key
 * (GET, PUT and compare-and-set), in the style of Knossos and Porcupine.
 */

/** What the client asked for. A DELETE is a write of `null`. */
export type Call =
  | { readonly kind: "read" }
  | { readonly kind: "write"; readonly value: string | null }
  | { readonly kind: "cas"; readonly expected: string | null; readonly value: string };

/**
 * What the client saw.
 * - `ok`: the operation took effect; for a read, `value` is what it returned (null: absent).
 * - `fail`: it certainly did not take effect (a cas answered 409, with the `current` value seen).
 * - `unknown`: no answer (timeout, connection error, 5xx): it may or may not have taken effect,
 *   at any time after its invocation. Never counted as a failure.
 */
export type Outcome =
  | { readonly status: "ok"; readonly value?: string | null }
  | { readonly status: "fail"; readonly current?: string | null }
  | { readonly status: "unknown"; readonly reason: string };

export interface Operation {
  /** Unique in the history. */
  readonly id: number;
  readonly client: number;
  readonly key: string;
  readonly call: Call;
  /** Monotonic milliseconds (`performance.now()` of the recording process) at invocation. */
  readonly invokedAt: number;
  /** When the answer arrived; Infinity for `unknown` outcomes (they may take effect any time later). */
  readonly completedAt: number;
  readonly outcome: Outcome;
}
