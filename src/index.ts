/**
 * tulipwire: the PEP 3156 (asyncio, "Tulip") model for Node.js over raw TLS.
 *
 * This is the one public entry point; every area has a barrel of its own, re-exported here by name.
 */
export * from './errors.js';
export * from './constants.js';
export * from './loop/index.js';
export * from './net/index.js';
export * from './pki/index.js';
export * from './wire/index.js';
export * from './tokens/index.js';
export * from './session/index.js';
