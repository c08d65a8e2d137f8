/**
 * The adapter of the runtime running the tests, so one suite exercises all three. The example
 * service picks its adapter the same way: one implementation, in examples/kv/runtime.ts.
 */
export {
  type Adapter,
  describeError,
  exitOnFailure,
  loadAdapter,
  type RuntimeName,
  runtime,
  scriptCommand,
} from "../../examples/kv/runtime.ts";
