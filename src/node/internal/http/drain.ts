/**
 * The drain of the node's `http.Server` on shutdown, so that a client that keeps sending on a kept-alive
 * connection gets a 503 with `connection: close`, then a refused connection, never a reset.
 *
 * HTTP/1.1 cannot warn an idle kept-alive connection before the server closes it, and closing a listening socket
 * resets the connections still waiting in its accept queue. So the drain keeps the port open and holds every
 * request that arrives (on a new or a kept-alive connection) until the node has been quiet for `QUIET_MS`: no
 * new connection and no new request. Clients that keep sending are then all waiting for an answer, none is
 * connecting: the server stops listening and answers each held request 503 with `connection: close` (so the
 * client's next connection is refused). From then on a kept-alive connection (a pool's spare one, or one whose
 * response had started when the drain began) is answered 503 with `connection: close` on its next request, or
 * closed once idle for `QUIET_MS`. Requests in flight when the drain began are marked `connection: close` and
 * finish. The drain ends when no connection is left, or after `graceMs`, when every connection is closed.
 */
import type * as NodeHttp from "node:http"
import * as Net from "node:net"
import { Effect } from "effect"

/** How long (ms) the node must see no new connection and no new request before it stops listening. */
export const QUIET_MS = 500

/** Answers a request 503 with `connection: close` (the server's own answer, logged). */
export type Refuse = (request: NodeHttp.IncomingMessage, response: NodeHttp.ServerResponse) => void

/**
 * Tracks `server`'s connections and requests. `take` is called by the server's request listener once the API's
 * handler is gone: it holds or refuses the request. `drain` runs the drain described in the module's docstring.
 */
export const make = (server: NodeHttp.Server, options: { readonly graceMs: number }, refuse: Refuse) => {
  const quietMs = Math.min(QUIET_MS, options.graceMs)
  /** Each open connection and how many of its requests are not answered yet. */
  const connections = new Map<Net.Socket, { active: number; requests: number }>()
  /** Responses not answered yet. */
  const open = new Set<NodeHttp.ServerResponse>()
  const held = new Map<NodeHttp.ServerResponse, NodeHttp.IncomingMessage>()
  let state: "serving" | "quieting" | "closed" = "serving"
  let arrivals = 0
  let quiet: ReturnType<typeof setTimeout> | undefined
  let onDone = () => {}

  /** Runs `f` once the event loop has read what had arrived (a request already sent counts as an arrival). */
  const afterPoll = (f: () => void) => setImmediate(f)

  /**
   * Closes `socket` once it has been idle for `quietMs` (no request on it meanwhile): at once if nothing is left
   * to write, else once its last answer is written.
   */
  const closeWhenIdle = (socket: Net.Socket) => {
    const connection = connections.get(socket)
    if (connection === undefined) return
    const requests = connection.requests
    setTimeout(
      () =>
        afterPoll(() => {
          if (connection.active > 0 || connection.requests !== requests || socket.destroyed) return
          if (socket.writableLength === 0) socket.destroy()
          else socket.end()
        }),
      quietMs
    )
  }

  const arrived = () => {
    arrivals++
    if (state !== "quieting") return
    clearTimeout(quiet)
    const seen = arrivals
    quiet = setTimeout(() => afterPoll(() => seen === arrivals && stopListening()), quietMs)
  }

  const checkDone = () => {
    if (state === "closed" && connections.size === 0) onDone()
  }

  const stopListening = () => {
    if (state === "closed") return
    state = "closed"
    clearTimeout(quiet)
    // only the listening socket: `server.close()` would also destroy connections whose answer is still being written
    Net.Server.prototype.close.call(server)
    for (const [response, request] of held) refuse(request, response)
    held.clear()
    for (const [socket, connection] of connections) if (connection.active === 0) closeWhenIdle(socket)
    checkDone()
  }

  server.on("connection", (socket: Net.Socket) => {
    connections.set(socket, { active: 0, requests: 0 })
    socket.once("close", () => {
      connections.delete(socket)
      checkDone()
    })
    arrived()
  })

  /** Counts the request on its connection; a kept-alive connection left idle after the drain closed is closed. */
  const track = (request: NodeHttp.IncomingMessage, response: NodeHttp.ServerResponse) => {
    const socket = request.socket
    const connection = connections.get(socket)
    if (connection !== undefined) {
      connection.active++
      connection.requests++
    }
    open.add(response)
    response.once("close", () => {
      open.delete(response)
      held.delete(response)
      if (connection !== undefined) connection.active--
      if (state === "closed" && connection?.active === 0) closeWhenIdle(socket)
    })
    arrived()
  }

  /** Holds the request while the drain is quieting; refuses it at once before the drain starts or once it closed. */
  const take: Refuse = (request, response) => {
    if (state === "quieting") held.set(response, request)
    else refuse(request, response)
  }

  const drain = Effect.async<void>((resume) => {
    state = "quieting"
    for (const response of open) if (!response.headersSent) response.setHeader("connection", "close")
    const grace = setTimeout(() => {
      stopListening()
      server.closeAllConnections()
      for (const socket of connections.keys()) socket.destroy()
      connections.clear()
      onDone()
    }, options.graceMs).unref()
    onDone = () => {
      onDone = () => {}
      clearTimeout(grace)
      // clears Node's connection-checking interval; the server no longer listens, so this closes nothing
      server.close(() => {})
      resume(Effect.void)
    }
    // nothing open: nobody is kept waiting, stop listening at once; else wait for the quiet period
    if (connections.size === 0) stopListening()
    else arrived()
  })
  return { track, take, drain }
}
