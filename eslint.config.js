import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['node_modules', 'dist', '.bench-build', '.tap', 'bench/results', 'test/artifacts'] }),
  {
    // TypeBox's idiom: a schema and its Static type share one name (STYLE.md §4).
    rules: { '@typescript-eslint/no-redeclare': 'off' }
  }
]
