/** This package on disk: its directory (where `templates/` and `locale/` ship) and its version. */
import { existsSync, readFileSync } from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** The nearest directory at or above `directory` with a `package.json`: this package's own. */
const packageDirectoryOf = (directory: string): string => {
  if (existsSync(path.join(directory, "package.json"))) return directory
  const parent = path.dirname(directory)
  return parent === directory ? directory : packageDirectoryOf(parent)
}

/** Found from this module's own place, so it works from `src/`, `dist/`, the bundled `dist/main.js` and `node_modules`. */
export const packageDirectory: string = packageDirectoryOf(path.dirname(fileURLToPath(import.meta.url)))

/** `version` in package.json, as `--version` prints it. */
export const packageVersion: string = (JSON.parse(readFileSync(path.join(packageDirectory, "package.json"), "utf8")) as { version: string }).version
