// Publishes of one turn share one SPUBLISH (services/redis/link.ts); the framing must give
// back exactly the payloads, in order, whatever they hold.
import t from 'tap'
import { batch, unbatch } from '../services/redis/keys.ts'

t.test('batch and unbatch round-trip any payloads in order', async t => {
  const payloads = ['s|p1|a|{"type":"signal","data":"x|y|12|z"}', '', 'm|3|abc', 'é😀|', 'b|p|f|n|{"data":"' + 'q'.repeat(70000) + '"}']
  t.same(unbatch(batch(payloads)), payloads)
  t.same(unbatch(batch([payloads[0]])), [payloads[0]], 'a lone payload travels unframed')
  t.equal(batch([payloads[0]]), payloads[0])
})

t.test('a malformed batch gives what came before the fault, never throws', async t => {
  t.same(unbatch('m|3|abc4|de'), ['abc'], 'truncated entry dropped')
  t.same(unbatch('m|x|abc'), [], 'bad length')
  t.same(unbatch('m|-1|'), [])
  t.same(unbatch('m|'), [])
})
