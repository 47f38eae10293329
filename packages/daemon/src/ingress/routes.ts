/** What the ingress serves under a name: an upstream (proxied) or a static site (files). */
export interface IngressRoute {
  /** A DNS name, e.g. `gitea.default.home`. */
  host: string;
  /** Plain HTTP upstream, `127.0.0.1:PORT` (an IP, `[IPv6]` or DNS name, and a port). */
  upstream: string;
}

export interface IngressSite {
  /** A DNS name, e.g. `blog.home`. */
  host: string;
  /** The version directory relative to the sites root, `<page>/<version>`. */
  root: string;
}
