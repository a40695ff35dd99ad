/** The net area's public exports (transports, protocols, servers, streams), re-exported by src/index.ts. */
export * from './protocols.js';
export * from './transports.js';
