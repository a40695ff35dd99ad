/**
 * PriorityQueue: items that compare equal come out in the order asyncio's PriorityQueue gives them. asyncio's
 * `PriorityQueue._put`/`_get` (Lib/asyncio/queues.py) are `heapq.heappush`/`heapq.heappop` (Lib/heapq.py `_siftdown`,
 * `_siftup`; the C `_heapq` module runs the same algorithm): a pop moves the smaller child up (the right one when the
 * two are equal: `not heap[child] < heap[right]`) all the way down to a leaf, then sifts the last item up from there.
 * The order of equal items is what asyncio users see with the pattern the Python docs recommend for PriorityQueue
 * (`@dataclass(order=True)` with the payload `field(compare=False)`).
 *
 * No CPython test covers ties (test_queues' PriorityQueueTests.test_order uses distinct items); the expected orders
 * below are what CPython 3.13 prints for the same programs:
 *
 *   @dataclass(order=True)
 *   class It:
 *       p: int
 *       name: str = field(compare=False)
 *   q = asyncio.PriorityQueue()
 *   for i in range(20):
 *       await q.put(It((i * 7) % 3, f'n{i}'))
 *       if i % 3 == 2: out.append((await q.get()).name)
 *   while not q.empty(): out.append(q.get_nowait().name)
 */
import { describe, expect, it } from 'vitest';
import { PriorityQueue } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

interface It {
  p: number;
  name: string;
}
const byPriority = (a: It, b: It): number => a.p - b.p;

describe('PriorityQueue order of equal items (asyncio queues.py over heapq)', () => {
  const fx = useLoop();

  it('interleaved puts and gets with repeated priorities pop in heapq order', async () => {
    const out = await fx.run(async () => {
      const q = new PriorityQueue<It>(0, { compare: byPriority });
      const names: string[] = [];
      for (let i = 0; i < 20; i++) {
        await q.put({ p: (i * 7) % 3, name: `n${i}` });
        if (i % 3 === 2) names.push((await q.get()).name);
      }
      while (!q.empty()) names.push(q.getNowait().name);
      return names;
    });
    expect(out).toEqual(['n0', 'n3', 'n6', 'n9', 'n12', 'n15', 'n18', 'n16', 'n19', 'n7', 'n4', 'n13', 'n1', 'n10', 'n17', 'n11', 'n5', 'n8', 'n14', 'n2']);
  });

  it('eight equal items pop in heapq order, not insertion order', () => {
    const q = new PriorityQueue<It>(0, { compare: byPriority });
    for (let i = 0; i < 8; i++) q.putNowait({ p: 0, name: `e${i}` });
    const out: string[] = [];
    while (!q.empty()) out.push(q.getNowait().name);
    // CPython 3.13: [q.get_nowait().name for _ in range(8)] after eight put_nowait(It(0, f'e{i}')).
    expect(out).toEqual(['e0', 'e2', 'e6', 'e5', 'e7', 'e4', 'e1', 'e3']);
  });
});
