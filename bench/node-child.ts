/**
 * The node for case 8, in its own process (so that autocannon in the parent does not share its event loop):
 * the fixture wallet, a `SignerPool`, the registry and the HTTP API on 127.0.0.1, any free port. Prints one JSON
 * line `{ "url", "address" }` once it listens; stops on SIGTERM.
 *
 * Usage: `tsx bench/node-child.ts memory|<sqlite file>`
 *
 * It assembles the node from the same Layers as `Node.layer`, plus the `SignerPool` as the registry's `signer`
 * (`NodeConfig` has no signer setting yet).
 */
import * as NodeHttp from "node:http"
import { HttpServer } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import * as AssignmentStore from "../src/AssignmentStore.js"
import * as NameService from "../src/NameService.js"
import * as Http from "../src/node/Http.js"
import * as SignerPool from "../src/node/SignerPool.js"
import * as SchedulerRegistry from "../src/SchedulerRegistry.js"
import * as SqliteStore from "../src/sqlite/SqliteStore.js"
import * as Wallet from "../src/Wallet.js"
import { walletJwk } from "../test/fixtures/wallet.js"

const storeArg = process.argv[2] ?? "memory"
const BLOCK_HEIGHT = 1_500_000

const wallet = Layer.orDie(Wallet.layerJwk(walletJwk))
const store = storeArg === "memory" ? AssignmentStore.layerMemory : SqliteStore.layer({ filename: storeArg })
const registry = Layer.unwrapEffect(
  Effect.map(SignerPool.SignerPool, (signer) =>
    SchedulerRegistry.layer({ mode: "local_confirmation", blockHeight: () => BLOCK_HEIGHT, signer })
  )
).pipe(
  Layer.provideMerge(Layer.mergeAll(NameService.layer, Layer.orDie(store), Layer.orDie(SignerPool.layer()))),
  Layer.provideMerge(wallet)
)
const http = Http.layer({ bodyLimit: 1024 * 1024, blockHeight: BLOCK_HEIGHT }).pipe(
  Layer.provideMerge(NodeHttpServer.layer(() => NodeHttp.createServer(), { port: 0, host: "127.0.0.1" }))
)

const announce = Effect.gen(function* () {
  const server = yield* HttpServer.HttpServer
  const w = yield* Wallet.Wallet
  const address = server.address
  if (address._tag !== "TcpAddress") return yield* Effect.die("not a TCP address")
  console.log(JSON.stringify({ url: `http://127.0.0.1:${address.port}`, address: w.address }))
})

Layer.launch(Layer.provideMerge(Layer.effectDiscard(announce), Layer.provideMerge(http, registry))).pipe(
  Effect.orDie,
  NodeRuntime.runMain
)
