import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TownError } from "@townos/format";
import { escapeXml, parseDeviceDescription, parseSoapResponse, upnpErrorCode } from "./igd.js";
import { locationOf } from "./ssdp.js";

function description(services: string, urlBase = ""): string {
  return `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">${urlBase}
  <device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
    <deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
      <deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
        <serviceList>${services}</serviceList>
      </device></deviceList>
    </device></deviceList>
  </device>
</root>`;
}

const service = (type: string, control: string): string =>
  `<service><serviceType>${type}</serviceType><controlURL>${control}</controlURL></service>`;

const WANIP1 = "urn:schemas-upnp-org:service:WANIPConnection:1";
const WANPPP1 = "urn:schemas-upnp-org:service:WANPPPConnection:1";

describe("parseDeviceDescription", () => {
  const url = new URL("http://192.168.1.1:5000/rootDesc.xml");

  it("finds the connection service in nested devices, relative to the description", () => {
    const found = parseDeviceDescription(
      description(service(WANPPP1, "/ppp") + service(WANIP1, "/ctl/IPConn")),
      url,
    );
    assert.deepEqual(found, {
      descriptionUrl: url.href,
      controlUrl: "http://192.168.1.1:5000/ctl/IPConn",
      serviceType: WANIP1,
    });
  });

  it("takes WANPPPConnection when there is nothing else, and honours URLBase", () => {
    const found = parseDeviceDescription(
      description(
        service(WANPPP1, "upnp/control/ppp"),
        "<URLBase>http://192.168.1.1:49000/</URLBase>",
      ),
      url,
    );
    assert.equal(found.controlUrl, "http://192.168.1.1:49000/upnp/control/ppp");
    assert.equal(found.serviceType, WANPPP1);
  });

  it("refuses control URLs on other hosts and devices without a connection service", () => {
    assert.throws(
      () => parseDeviceDescription(description(service(WANIP1, "http://10.0.0.9/ctl")), url),
      /another host/,
    );
    assert.throws(
      () => parseDeviceDescription(description(service("urn:x:service:Other:1", "/x")), url),
      /no WANIPConnection/,
    );
    assert.throws(() => parseDeviceDescription("<root><device>", url), TownError);
  });
});

describe("parseSoapResponse", () => {
  const envelope = (body: string): string =>
    `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>${body}</s:Body></s:Envelope>`;

  it("reads the values of the action's response, entities decoded", () => {
    assert.deepEqual(
      parseSoapResponse(
        envelope(
          '<u:GetSpecificPortMappingEntryResponse xmlns:u="urn:x"><NewInternalPort>80</NewInternalPort>' +
            "<NewPortMappingDescription>a &amp; b</NewPortMappingDescription><NewEnabled>1</NewEnabled>" +
            "</u:GetSpecificPortMappingEntryResponse>",
        ),
        "GetSpecificPortMappingEntry",
      ),
      { NewInternalPort: "80", NewPortMappingDescription: "a & b", NewEnabled: "1" },
    );
  });

  it("turns a UPnP fault into a TownError that keeps the router's code", () => {
    let caught: unknown;
    try {
      parseSoapResponse(
        envelope(
          "<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>" +
            '<UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>718</errorCode>' +
            "<errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault>",
        ),
        "AddPortMapping",
      );
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof TownError);
    assert.equal(caught.code, "conflict");
    assert.equal(upnpErrorCode(caught), 718);
    assert.equal(
      caught.message,
      "upnp: AddPortMapping: the router refused: 718 ConflictInMappingEntry",
    );
  });

  it("refuses an answer without the response element", () => {
    assert.throws(() => parseSoapResponse(envelope("<u:Other/>"), "AddPortMapping"), /no response/);
  });
});

describe("escapeXml", () => {
  it("escapes markup in values", () => {
    assert.equal(escapeXml(`</a><b x="1">&'`), "&lt;/a&gt;&lt;b x=&quot;1&quot;&gt;&amp;&apos;");
  });
});

describe("locationOf", () => {
  const answer = (location: string): Buffer =>
    Buffer.from(`HTTP/1.1 200 OK\r\nST: x\r\nLOCATION: ${location}\r\n\r\n`);

  it("takes an http location on the answering host only", () => {
    assert.equal(
      locationOf(answer("http://192.168.1.1:5000/rootDesc.xml"), "192.168.1.1"),
      "http://192.168.1.1:5000/rootDesc.xml",
    );
    assert.equal(locationOf(answer("http://10.0.0.9/rootDesc.xml"), "192.168.1.1"), undefined);
    assert.equal(locationOf(answer("https://192.168.1.1/rootDesc.xml"), "192.168.1.1"), undefined);
    assert.equal(locationOf(answer("http://u:p@192.168.1.1/d.xml"), "192.168.1.1"), undefined);
    assert.equal(
      locationOf(
        Buffer.from("NOTIFY * HTTP/1.1\r\nLOCATION: http://192.168.1.1/\r\n\r\n"),
        "192.168.1.1",
      ),
      undefined,
    );
  });
});
