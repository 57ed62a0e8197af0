// A log-bucketed latency histogram (≈1 % resolution from 1 µs to minutes): constant memory,
// one array increment per sample, and mergeable across generator processes.

const growth = 1.01
const logGrowth = Math.log(growth)
export const bucketCount = 2400

export class Histogram {
  readonly counts: Uint32Array
  total = 0
  max = 0

  constructor (counts?: ArrayLike<number>) {
    this.counts = new Uint32Array(bucketCount)
    if (counts !== undefined) {
      this.counts.set(counts)
      for (let i = 0; i < bucketCount; i++) this.total += this.counts[i]
    }
  }

  /** Records one latency in microseconds. */
  record (us: number): void {
    const v = us < 1 ? 1 : us
    let i = Math.floor(Math.log(v) / logGrowth)
    if (i >= bucketCount) i = bucketCount - 1
    this.counts[i]++
    this.total++
    if (v > this.max) this.max = v
  }

  merge (other: Histogram): void {
    for (let i = 0; i < bucketCount; i++) this.counts[i] += other.counts[i]
    this.total += other.total
    if (other.max > this.max) this.max = other.max
  }

  /** The latency (µs) at quantile q in [0, 1]: the upper edge of its bucket, capped at max. */
  quantile (q: number): number {
    if (this.total === 0) return 0
    const rank = Math.ceil(q * this.total)
    let seen = 0
    for (let i = 0; i < bucketCount; i++) {
      seen += this.counts[i]
      if (seen >= rank) return Math.min(growth ** (i + 1), this.max)
    }
    return this.max
  }

  toJSON (): { counts: number[], max: number } {
    return { counts: Array.from(this.counts), max: this.max }
  }

  static from (json: { counts: number[], max: number }): Histogram {
    const h = new Histogram(json.counts)
    h.max = json.max
    return h
  }
}
