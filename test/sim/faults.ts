/**
 * Fault injection for the fault phase. Random faults (`injectFault`, weighed per scenario:
 * swarm testing) plus faults aimed where bugs hide: crashes while a write is in flight, and
 * leaders cut off right after their election or a commit, which leaves partly replicated
 * entries behind (§5.4.2, Figure 8).
 */
import { activeConfig, type Effect } from "../../mod.ts";
import type { Cluster } from "./cluster.ts";
import { randomMembership, randomTransferTarget } from "./membership.ts";
import type { SimNode } from "./node.ts";
import type { Random } from "./random.ts";
import { type FaultKind, faultKinds, randomLinks } from "./scenario.ts";

/** Crashes mostly leave a majority of voters up, so the cluster progresses between faults. */
export function mayCrash(cluster: Cluster): boolean {
  if (!cluster.faults) return false;
  const down = cluster.nodes.filter((n) => !n.up).length;
  return down < (cluster.scenario.voters.length - 1) >> 1 || cluster.rng.chance(0.1);
}

/** A downtime for a crash: often a quick process restart, while messages are still flying. */
export function quickRestartMs(cluster: Cluster): number {
  const { rng, scenario } = cluster;
  return rng.chance(0.5)
    ? rng.int(0, 2 * scenario.links.maxDelayMs)
    : rng.int(1, scenario.config.electionTimeoutMaxMs);
}

function partitionMs(cluster: Cluster): number {
  const { electionTimeoutMinMs, electionTimeoutMaxMs } = cluster.scenario.config;
  return cluster.rng.int(electionTimeoutMinMs >> 1, 2 * electionTimeoutMaxMs);
}

/** Cuts `node` off from everyone (replacing any partition) until the partition heals. */
export function isolateNode(cluster: Cluster, node: SimNode): void {
  cluster.network.healPartitions();
  cluster.network.isolate(node.index, true);
  cluster.network.isolate(node.index, false);
  cluster.partitioned(partitionMs(cluster));
  cluster.verbose(`isolate ${node.id}`);
}

function scheduleCrash(cluster: Cluster, node: SimNode, at: number): void {
  cluster.schedule(at, {
    kind: "crash",
    node: node.index,
    inc: node.inc,
    downMs: quickRestartMs(cluster),
  });
}

/** A storage write was queued: sometimes crash its node while the write is in flight. */
export function afterWrite(cluster: Cluster, node: SimNode, effect: Effect): void {
  const { rng, scenario } = cluster;
  // Hard state (terms, votes) is written rarely but matters most: aim at it more.
  // So is an install (§7): a crash before it is durable must leave the previous state intact.
  const aimed = effect.type === "saveHardState" || effect.type === "installSnapshot";
  const rate = scenario.crashOnWriteRate * (aimed ? 10 : 1);
  if (!cluster.faults || !rng.chance(rate)) return;
  scheduleCrash(cluster, node, node.diskBusyUntil - rng.int(0, scenario.maxDiskDelayMs));
}

/**
 * Sometimes cuts a leader off within about a round trip: a crash (its messages in flight still
 * arrive) or an isolation (they do not, so its latest entries stay its own).
 */
function disruptLeader(cluster: Cluster, node: SimNode, probability: number): void {
  const { rng, scenario } = cluster;
  if (!cluster.faults || !rng.chance(probability)) return;
  const { maxDelayMs } = scenario.links;
  const window = rng.chance(0.5) ? maxDelayMs : 2 * maxDelayMs + scenario.maxDiskDelayMs;
  const at = cluster.now + rng.int(0, window);
  if (rng.chance(0.5)) scheduleCrash(cluster, node, at);
  else cluster.schedule(at, { kind: "isolate", node: node.index, inc: node.inc });
}

export function afterElection(cluster: Cluster, leader: SimNode): void {
  disruptLeader(cluster, leader, cluster.scenario.leaderDisruptRate);
}

export function afterLeaderCommit(cluster: Cluster, leader: SimNode): void {
  disruptLeader(cluster, leader, cluster.scenario.leaderDisruptRate / 10);
}

function leaderOf(nodes: readonly SimNode[]): SimNode | undefined {
  let leader: SimNode | undefined;
  for (const node of nodes) {
    const s = node.state;
    if (node.up && s?.role === "leader" && (!leader || s.term > (leader.state?.term ?? 0))) {
      leader = node;
    }
  }
  return leader;
}

function pickKind(rng: Random, weights: Readonly<Record<FaultKind, number>>): FaultKind {
  let total = 0;
  for (const kind of faultKinds) total += weights[kind];
  let roll = rng.next() * total;
  for (const kind of faultKinds) {
    roll -= weights[kind];
    if (roll < 0) return kind;
  }
  return "crash";
}

/** One random fault, at every chaos event of the fault phase. */
export function injectFault(cluster: Cluster): void {
  const { rng, nodes, network, scenario } = cluster;
  const leader = leaderOf(nodes);
  const maxElection = scenario.config.electionTimeoutMaxMs;
  switch (pickKind(rng, scenario.faultWeights)) {
    case "crash": {
      const up = nodes.filter((n) => n.up);
      if (up.length === 0 || !mayCrash(cluster)) return;
      const victim = leader && rng.chance(0.6) ? leader : rng.pick(up);
      const roll = rng.next();
      const downMs =
        roll < 0.3
          ? quickRestartMs(cluster)
          : roll < 0.9
            ? rng.int(1, 2 * maxElection)
            : rng.int(1, 10 * maxElection);
      cluster.crash(victim, downMs);
      return;
    }
    case "split":
      network.healPartitions();
      network.split(nodes.map(() => rng.chance(0.5)));
      cluster.partitioned(partitionMs(cluster));
      cluster.verbose("partition (random split)");
      return;
    case "isolate": {
      const node = rng.pick(nodes);
      const outbound = rng.chance(0.5);
      network.healPartitions();
      network.isolate(node.index, outbound);
      cluster.partitioned(partitionMs(cluster));
      cluster.verbose(`isolate ${node.id} (${outbound ? "cannot send" : "cannot receive"})`);
      return;
    }
    case "isolateLeader":
      if (leader) isolateNode(cluster, leader);
      return;
    case "links":
      network.params = rng.chance(0.5) ? randomLinks(rng, maxElection) : scenario.links;
      cluster.verbose(`links ${JSON.stringify(network.params)}`);
      return;
    case "burst": {
      const burst = rng.int(3, 20);
      for (let i = 0; i < burst; i++) cluster.propose(rng.int(1, 4));
      return;
    }
    case "membership": {
      const node = leader ?? rng.pick(nodes);
      const s = node.state;
      if (!node.up || !s) return;
      const all = nodes.map((n) => n.id);
      const membership = randomMembership(rng, all, activeConfig(s.configs).membership);
      cluster.admin(node, {
        type: "changeMembership",
        requestId: cluster.nextRequest(),
        membership,
      });
      return;
    }
    case "snapshot": {
      const node = rng.chance(0.5) && leader ? leader : rng.pick(nodes);
      if (node.up && node.state) cluster.triggerSnapshot(node);
      return;
    }
    case "transfer": {
      const node = leader ?? rng.pick(nodes);
      const s = node.state;
      if (!node.up || !s) return;
      const to = randomTransferTarget(rng, s.configs);
      cluster.admin(node, { type: "transferLeadership", requestId: cluster.nextRequest(), to });
      return;
    }
  }
}
