/**
 * Keel: a Raft consensus library for Node, Bun and Deno.
 *
 * - The pure core: `createState`, `step` and their types (see docs/core.md).
 * - The driver: `Raft`, which runs the core against a LogStore, a Network and a StateMachine.
 * - Memory implementations of LogStore and Network for tests and in-process use.
 * - `SqliteLogStore`, written against a small driver interface; each runtime's adapter
 *   (`adapters/node.ts`, `bun.ts`, `deno.ts`) opens one on its own SQLite.
 * - The HTTP transport: `raftRoutes` (Hono routes to mount) and `FetchNetwork` (see docs/http.md),
 *   and `adminRoutes`, the membership and leadership admin API over HTTP.
 */
export * from "./src/core/mod.ts";
export type { AdminErrorCode } from "./src/driver/errors.ts";
export {
  AdminError,
  BackpressureError,
  FatalError,
  LeadershipLostError,
  NotLeaderError,
  RemovedError,
  ShutdownError,
  TimeoutError,
  TransferInProgressError,
} from "./src/driver/errors.ts";
export type { LogFields, Logger, LogLevel } from "./src/driver/logger.ts";
export { consoleLogger, silentLogger } from "./src/driver/logger.ts";
export type {
  MetricsListener,
  MetricsWatch,
  RaftMetrics,
  ReplicationMetrics,
} from "./src/driver/metrics.ts";
export type {
  AddLearnerOptions,
  ChangeMembershipOptions,
  DriverConfig,
  MembershipChangeResult,
  RaftOptions,
  RaftOptionsConfig,
  WriteResult,
} from "./src/driver/raft.ts";
export { Raft } from "./src/driver/raft.ts";
export type { ApplyResponse, StateMachine } from "./src/driver/state-machine.ts";
export { ApplyFailure } from "./src/driver/state-machine.ts";
export type { AdminRoutesOptions, RaftAdmin } from "./src/http/admin.ts";
export { adminRoutes } from "./src/http/admin.ts";
export type { RaftRoutesOptions, RaftRpcHandler } from "./src/http/routes.ts";
export {
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_SNAPSHOT_CHUNK_BYTES,
  raftRoutes,
} from "./src/http/routes.ts";
export { WireError } from "./src/http/wire-error.ts";
export type {
  FetchNetworkOptions,
  TransportErrorKind,
  TransportLogger,
} from "./src/net/fetch.ts";
export { FetchNetwork, TransportError } from "./src/net/fetch.ts";
export type {
  ChunkFilter,
  CounterType,
  MemoryNetworkOptions,
  MessageCounters,
  MessageFilter,
  NetworkErrorKind,
  NetworkFaults,
} from "./src/net/memory.ts";
export { MemoryNetwork, NetworkError } from "./src/net/memory.ts";
export type {
  Network,
  RequestMessage,
  ResponseMessage,
  RpcHandler,
  SnapshotChunk,
  SnapshotChunkResponse,
  SnapshotMessage,
} from "./src/net/network.ts";
export type {
  FetchFunction,
  PendingPost,
  PostAnswer,
  PostFunction,
  PostRequest,
} from "./src/net/post.ts";
export { postWithFetch } from "./src/net/post.ts";
export type { LogStore, LogWrite, StoredState } from "./src/storage/log-store.ts";
export type { MemoryLogStoreOptions } from "./src/storage/memory.ts";
export { InjectedStorageError, MemoryLogStore } from "./src/storage/memory.ts";
export type { MemorySnapshotStoreOptions } from "./src/storage/memory-snapshot.ts";
export { MemorySnapshotStore } from "./src/storage/memory-snapshot.ts";
export type {
  SnapshotMeta,
  SnapshotStore,
  SnapshotWriter,
  StoredSnapshot,
} from "./src/storage/snapshot-store.ts";
export { DEFAULT_SNAPSHOT_CHUNK_BYTES } from "./src/storage/snapshot-store.ts";
export type {
  SqliteDatabase,
  SqliteLogStoreOptions,
  SqliteStatement,
  SqliteSynchronous,
  SqliteValue,
} from "./src/storage/sqlite.ts";
export { SqliteLogStore } from "./src/storage/sqlite.ts";
export type { SqliteSnapshotStoreOptions } from "./src/storage/sqlite-snapshot.ts";
export { SqliteSnapshotStore } from "./src/storage/sqlite-snapshot.ts";
export type { SqliteWalSync } from "./src/storage/wal-sync.ts";
