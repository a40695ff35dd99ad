/**
 * A PriorityQueue whose `compare` throws part-way through a put or a get (an item its comparator cannot order)
 * passes the error to the caller and leaves the queue as it was. The heap used to move items while it compared:
 * a throw half-way left an item twice in the queue and another one gone (a get of [1..7] failing one level down
 * left [2, 2, 3, 4, 5, 6], so 2 would be delivered twice and 1 and 7 never), and a failed put counted nothing but
 * kept a copy. CPython's heapq loses the popped item in the same case; here nothing is lost.
 */
import { describe, expect, it } from 'vitest';
import { PriorityQueue } from '../../src/index.js';

interface Item {
  p: number;
  poison?: number; // compare throws when this item meets the item of this priority
}

function compare(a: Item, b: Item): number {
  if (a.poison === b.p || b.poison === a.p) throw new TypeError(`cannot order ${a.p} and ${b.p}`);
  return a.p - b.p;
}

function drain(q: PriorityQueue<Item>): number[] {
  const out: number[] = [];
  while (!q.empty()) out.push(q.getNowait().p);
  return out;
}

describe('PriorityQueue with a compare that throws', () => {
  it('a put that fails while sifting up stores nothing and keeps every other item once', () => {
    const q = new PriorityQueue<Item>(0, { compare });
    for (let p = 1; p <= 7; p++) q.putNowait({ p });
    // 0 goes up past 4 and 2, then meets 1 and the comparison throws.
    expect(() => q.putNowait({ p: 0, poison: 1 })).toThrow('cannot order 0 and 1');
    expect(q.qsize()).toBe(7);
    expect(String(q)).toBe('<PriorityQueue maxsize=0 size=7 tasks=7>');
    expect(drain(q)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('a get that fails while sifting down loses nothing: the next get (once the comparator can) gives the same item', () => {
    const q = new PriorityQueue<Item>(0, { compare });
    const items: Item[] = [];
    for (let p = 1; p <= 7; p++) {
      const it = { p };
      items.push(it);
      q.putNowait(it);
    }
    // Popping 1 compares the children 4 and 5 one level down: make that throw.
    items[3]!.poison = 5;
    expect(() => q.getNowait()).toThrow('cannot order 4 and 5');
    expect(q.qsize()).toBe(7);
    delete items[3]!.poison;
    expect(drain(q)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('a get that fails while the last item sifts back up loses nothing either', () => {
    const q = new PriorityQueue<Item>(0, { compare });
    const last: Item = { p: 8 };
    for (const p of [1, 3, 2, 5, 4, 6, 7]) q.putNowait({ p });
    q.putNowait(last);
    // Popping 1: 2 and then 6 move up and the last item (8) sifts back up from the leaf, meeting 6 first.
    last.poison = 6;
    expect(() => q.getNowait()).toThrow('cannot order 8 and 6');
    expect(q.qsize()).toBe(8);
    delete last.poison;
    expect(drain(q)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });
});
