/**
 * The scheduler's event queue: a binary min-heap ordered by (time, sequence number), so events
 * at the same simulated time run in the order they were scheduled.
 */
interface Slot<T> {
  readonly time: number;
  readonly seq: number;
  readonly item: T;
}

function before<T>(x: Slot<T>, y: Slot<T>): boolean {
  return x.time < y.time || (x.time === y.time && x.seq < y.seq);
}

export class EventQueue<T> {
  private readonly heap: Slot<T>[] = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  push(time: number, item: T): void {
    const heap = this.heap;
    let i = heap.length;
    const slot: Slot<T> = { time, seq: this.seq++, item };
    heap.push(slot);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(slot, heap[parent] as Slot<T>)) break;
      heap[i] = heap[parent] as Slot<T>;
      i = parent;
    }
    heap[i] = slot;
  }

  pop(): { readonly time: number; readonly item: T } | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined) return undefined;
    const n = heap.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        const child =
          right < n && before(heap[right] as Slot<T>, heap[left] as Slot<T>) ? right : left;
        if (!before(heap[child] as Slot<T>, last)) break;
        heap[i] = heap[child] as Slot<T>;
        i = child;
      }
      heap[i] = last;
    }
    return top;
  }
}
