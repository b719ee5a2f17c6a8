/** A configuration value is wrong; the message names the variable. Stops the process at start. */
export class ConfigError extends Error {}
