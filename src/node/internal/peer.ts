/**
 * Loads a part of the node that stands on optional peer dependencies (a store, the cluster, trace export) only
 * when the configuration asks for it, so `su serve` with the SQLite default needs only the node's and SQLite's
 * peers. A missing peer is a `StoreError` (operation `open`) that names the packages to install.
 */
import { Effect, Layer } from "effect"
import { StoreError } from "../../errors.js"

export const importPeer = <M, A, E, R>(
  load: () => Promise<M>,
  use: (module: M) => Layer.Layer<A, E, R>,
  what: string,
  packages: ReadonlyArray<string>
): Layer.Layer<A, E | StoreError, R> =>
  Layer.unwrapEffect(
    Effect.map(
      Effect.tryPromise({
        try: load,
        catch: (error) =>
          new StoreError({
            operation: "open",
            reason: `${what} needs the packages ${packages.join(", ")} (npm install ${packages.join(" ")}): ${
              error instanceof Error ? error.message : String(error)
            }`
          })
      }),
      use
    )
  )
