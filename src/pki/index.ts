/** The pki area's public exports, re-exported by src/index.ts. */
export * from './issue.js';
export * from './files.js';
export * from './ca.js';
export * from './peer-identity.js';
export * from './tls-errors.js';
export * from './tls-options.js';
export * from './rotator.js';
export * from './watch.js';
