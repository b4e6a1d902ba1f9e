/** Disjoint sets over 0..n-1 with path halving and union by size. */
export class UnionFind {
  private readonly parent: Int32Array;
  private readonly size: Int32Array;

  /** `buffers`: arrays of n elements to work in (their contents are overwritten). */
  constructor(n: number, buffers?: { parent: Int32Array; size: Int32Array }) {
    this.parent = buffers?.parent ?? new Int32Array(n);
    this.size = (buffers?.size ?? new Int32Array(n)).fill(1);
    for (let i = 0; i < n; i++) this.parent[i] = i;
  }

  find(a: number): number {
    const p = this.parent;
    while (p[a] !== a) {
      p[a] = p[p[a]];
      a = p[a];
    }
    return a;
  }

  /** Every element's root, in place (no union may follow): the parent array itself. */
  roots(): Int32Array {
    const p = this.parent;
    for (let a = 0; a < p.length; a++) p[a] = this.find(a);
    return p;
  }

  union(a: number, b: number): void {
    let ra = this.find(a);
    let rb = this.find(b);
    if (ra === rb) return;
    if (this.size[ra] < this.size[rb]) [ra, rb] = [rb, ra];
    this.parent[rb] = ra;
    this.size[ra] += this.size[rb];
  }
}
