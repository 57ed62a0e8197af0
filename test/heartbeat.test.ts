// The heartbeat spreads its visits over the period instead of visiting everyone in one tick.
import t from 'tap'
import { Heartbeat } from '../services/heartbeat.ts'

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

t.test('each member is visited once per period, a slice per tick', async t => {
  const visits = new Map<number, number>()
  const perTick: number[] = []
  let thisTick = 0
  let flush: NodeJS.Timeout | undefined
  const beat = new Heartbeat<number>(1000, m => {
    visits.set(m, (visits.get(m) ?? 0) + 1)
    // Visits in one tick run synchronously; a macrotask later the tick is over.
    if (thisTick++ === 0) flush = setTimeout(() => { perTick.push(thisTick); thisTick = 0 }, 0)
  })
  t.teardown(() => { beat.stop(); clearTimeout(flush) })
  for (let i = 0; i < 1000; i++) beat.add(i)
  beat.add(5)
  t.equal(beat.size, 1000, 'adding a member twice keeps one')
  t.ok(beat.running)
  await sleep(1050)
  t.equal(visits.size, 1000, 'every member visited within one period')
  t.ok([...visits.values()].every(n => n === 1), 'none visited twice in one period')
  t.ok(perTick.length >= 8, `spread over ${perTick.length} ticks`)
  t.ok(Math.max(...perTick) <= 100, `at most ${Math.max(...perTick)} visits in one tick, for 1000 members over 10 slices`)
})

t.test('members deleted (even during a visit) are not visited again; the timer stops when empty', async t => {
  const seen: number[] = []
  const beat = new Heartbeat<number>(50, m => { seen.push(m); if (m === 1) beat.delete(1) })
  t.teardown(() => beat.stop())
  beat.add(1)
  beat.add(2)
  await sleep(130)
  t.equal(seen.filter(m => m === 1).length, 1, 'deleted in its own visit: visited once')
  t.ok(seen.filter(m => m === 2).length >= 2, 'the other keeps being visited')
  beat.delete(2)
  t.equal(beat.running, false, 'no members, no timer')
  const before = seen.length
  await sleep(120)
  t.equal(seen.length, before)
})

t.test('visits that delete every member within one tick stop the heartbeat cleanly', async t => {
  const seen: number[] = []
  const beat = new Heartbeat<number>(100, m => {
    seen.push(m)
    // The first visit of the tick ends everyone, as a node shutting its sockets would.
    for (let i = 0; i < 20; i++) beat.delete(i)
  })
  t.teardown(() => beat.stop())
  // 20 members over one slice: the tick would visit all 20.
  for (let i = 0; i < 20; i++) beat.add(i)
  await sleep(150)
  t.same(seen, [0], 'one visit, then nothing left to visit')
  t.equal(beat.running, false)
  beat.add(7)
  await sleep(150)
  t.same(seen, [0, 7], 'a member added afterwards starts a fresh round')
})
