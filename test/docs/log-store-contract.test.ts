/** The guide's own LogStore (docs/guide/examples/map-log-store.ts) passes the LogStore contract. */
import { emptyDisk, MapLogStore } from "../../docs/guide/examples/map-log-store.ts";
import { logStoreContract } from "../storage/contract.ts";

logStoreContract("the guide's MapLogStore", () => {
  const disk = emptyDisk();
  return { store: new MapLogStore(disk), reopen: async () => new MapLogStore(disk) };
});
