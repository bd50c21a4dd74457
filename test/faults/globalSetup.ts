/** Clears the fault figures before the run and prints the fault suite's one line after it (see figures.ts). */
import { clearFigures, faultLine, summedFigures } from './figures.js'

export default function setup() {
  clearFigures()
  return () => {
    const f = summedFigures()
    if (f) console.log(`faults: ${faultLine(f)}`)
  }
}
