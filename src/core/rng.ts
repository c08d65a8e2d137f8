/**
 * A seeded PRNG carried inside the state, so election jitter is deterministic (xorshift32).
 * The state is a non-zero uint32.
 */
export function seedRandom(seed: number): number {
  // Mix the seed so nearby seeds (node 1, node 2, …) diverge at once.
  let x = (seed ^ 0x9e3779b9) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  return x === 0 ? 0x6d2b79f5 : x;
}

/** Returns a value in [0, 1) and the next PRNG state. */
export function nextRandom(state: number): [value: number, next: number] {
  let x = state;
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  const next = x >>> 0;
  return [next / 0x100000000, next];
}

/** Seeds a PRNG from a node id, so every node of a cluster draws different timeouts. */
export function seedFromId(id: string, salt = 0): number {
  let h = 0x811c9dc5 ^ salt;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return seedRandom(h >>> 0);
}
