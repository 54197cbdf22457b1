/** On whose behalf, and as which application, a request runs. */
export interface Principal {
  subject: string;
  issuer: string;
  /** OAuth client (azp / client_id), when the token names one. */
  clientId?: string;
  roles: string[];
  scopes: string[];
  /** v3-ActReason codes (TREAT, ETREAT, BTG, HRESCH, …) the token asserts. */
  purposeOfUse: string[];
  tokenId?: string;
  /** The calling application, from its TLS client certificate. */
  certificate: { name: string; thumbprint: string };
  /** SMART launch context: the patient the token may act for (its `patient` claim), when it names one. */
  patient?: string;
  /** True when the token carried cnf.x5t#S256 and it matched the certificate. */
  certificateBound: boolean;
}
