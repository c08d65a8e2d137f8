/**
 * Random membership changes and leadership transfers for the fault phase (§6, thesis §3.10,
 * §4.3): the simulator asks the node it believes leads, so rejections (not leader, change in
 * progress, transfer in progress) are part of the game.
 */
import { activeConfig, type Membership, type NodeId } from "../../mod.ts";
import type { Random } from "./random.ts";

/** A random target configuration, one step away from `m` (or, sometimes, all voters replaced). */
export function randomMembership(rng: Random, all: readonly NodeId[], m: Membership): Membership {
  let voters = [...m.voters];
  let learners = m.learners.filter((id) => !voters.includes(id));
  const spares = all.filter((id) => !voters.includes(id) && !learners.includes(id));
  const without = (list: NodeId[], id: NodeId) => list.filter((x) => x !== id);
  switch (rng.int(0, 6)) {
    case 0: // add a learner
      if (spares.length > 0) learners.push(rng.pick(spares));
      break;
    case 1: // promote a learner
      if (learners.length > 0) {
        const id = rng.pick(learners);
        learners = without(learners, id);
        voters.push(id);
      }
      break;
    case 2: // demote a voter (maybe the leader)
      if (voters.length > 1) {
        const id = rng.pick(voters);
        voters = without(voters, id);
        learners.push(id);
      }
      break;
    case 3: // add a voter directly (it catches up inside the joint phase)
      if (spares.length > 0) voters.push(rng.pick(spares));
      break;
    case 4: // remove a voter (maybe the leader)
      if (voters.length > 1) voters = without(voters, rng.pick(voters));
      break;
    case 5: // remove a learner
      if (learners.length > 0) learners = without(learners, rng.pick(learners));
      break;
    default: {
      // replace the voters: any set of 1 to 5 nodes (a single voter wins its election in the
      // step that raised its term: its messages must wait until that term is durable).
      const size = rng.int(1, Math.min(5, all.length));
      const pool = [...all];
      voters = [];
      while (voters.length < size) {
        const id = rng.pick(pool);
        pool.splice(pool.indexOf(id), 1);
        voters.push(id);
      }
      learners = learners.filter((id) => !voters.includes(id));
    }
  }
  return { voters, learners, addresses: {} };
}

/** The target of a transfer: a voter of the node's configuration, or null for "the best". */
export function randomTransferTarget(
  rng: Random,
  configs: Parameters<typeof activeConfig>[0],
): NodeId | null {
  const { voters } = activeConfig(configs).membership;
  return rng.chance(0.4) || voters.length === 0 ? null : rng.pick(voters);
}
