/** Reading Prometheus' text format, as `/metrics` answers it. */

/** The value of one series (`name{labels}`, labels as the text writes them), or undefined when it is absent. */
export const sample = (text: string, series: string): number | undefined => {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}
