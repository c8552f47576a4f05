/** Types of parse-prometheus-text-format (it ships none): prom2json's shape. */
declare module 'parse-prometheus-text-format' {
  export interface PromSample {
    readonly labels?: Record<string, string>
    readonly value?: string
    readonly buckets?: Record<string, string>
    readonly count?: string
    readonly sum?: string
  }
  export interface PromFamily {
    readonly name: string
    readonly help: string
    readonly type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED'
    readonly metrics: readonly PromSample[]
  }
  export default function parsePrometheusTextFormat(text: string): PromFamily[]
}
