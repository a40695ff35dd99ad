/** The net area's public exports (transports, protocols, servers, streams), re-exported by src/index.ts. */
export * from './protocols.js';
export * from './transports.js';
export { AppState, appTransition, resolveWriteBufferLimits, StreamTransportBase } from './flow-control.js';
export type { AppStateValue, StreamTransportBaseOptions } from './flow-control.js';
export { SocketTransport } from './socket-transport.js';
export type { SocketTransportOptions } from './socket-transport.js';
export { MemoryTransport, createMemoryPair } from './memory-transport.js';
export type { MemoryPairOptions } from './memory-transport.js';
export { Server } from './server.js';
export type { ClientSslOptions, CreateServerOptions, ServerSslOptions } from './server.js';
export { secureContextFor } from './connect.js';
export type { CreateConnectionOptions, StartTlsOptions } from './connect.js';
export {
  StreamReader, StreamReaderProtocol, StreamWriter, openConnection, openUnixConnection, startServer, startUnixServer,
} from './streams.js';
export type {
  ClientConnectedCallback, OpenConnectionOptions, Separator, StartServerOptions, StreamReaderOptions,
} from './streams.js';
