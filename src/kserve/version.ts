/** The version both processes report in KServe server metadata. */
export const SERVER_VERSION = '0.1.0';
