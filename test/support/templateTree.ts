import { Effect, type Scope } from "effect"
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"

/** A templates directory of its own holding `files` (relative path → content), removed when the scope closes. */
export const templateTree = (files: Record<string, string>): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const dir = await mkdtemp(path.join(tmpdir(), "email-templates-"))
      for (const [file, content] of Object.entries(files)) {
        await mkdir(path.dirname(path.join(dir, file)), { recursive: true })
        await writeFile(path.join(dir, file), content)
      }
      return dir
    }),
    (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
  )

/** Overwrites one file of a tree made by `templateTree`. */
export const rewriteTemplate = (dir: string, file: string, content: string): Effect.Effect<void> =>
  Effect.promise(() => writeFile(path.join(dir, file), content))
