import { FULL_EVERY, HIDDEN_MAX_MS, HIDDEN_START_MS, Refresher, VISIBLE_FREQUENCY } from '../src/refresh';

describe('Refresher', () => {
  it('polls fast while visible, asks endpoints/cluster every FULL_EVERY ticks, slows down when hidden', async () => {
    const calls: boolean[] = [];
    const r = new Refresher(async full => {
      calls.push(full);
    });
    try {
      expect(r.poll.frequency.interval).toBe(HIDDEN_START_MS);
      r.shown();
      expect(r.poll.frequency).toEqual(VISIBLE_FREQUENCY);
      await r.poll.tick;
      await r.refreshNow();
      await r.poll.tick;
      expect(calls[0]).toBe(true); // showing forces a full refresh
      // run the factory directly for a deterministic sequence of ticks
      calls.length = 0;
      const tick = (r as any).tick.bind(r);
      for (let i = 0; i < 2 * FULL_EVERY; i++) {
        await tick();
      }
      expect(calls.filter(Boolean)).toHaveLength(2);
      r.hidden();
      expect(r.poll.frequency.interval).toBe(HIDDEN_START_MS);
      for (let i = 0; i < 10; i++) {
        await tick();
      }
      expect(r.poll.frequency.interval).toBe(HIDDEN_MAX_MS);
      expect(calls.slice(-10).every(full => !full)).toBe(true);
      r.shown();
      expect(r.poll.frequency.interval).toBe(VISIBLE_FREQUENCY.interval);
    } finally {
      r.dispose();
    }
  });
});
