/**
 * Archive uploads with a progress bar: fetch cannot report upload progress
 * (Chromium streams request bodies only over HTTP/2), so the browser's
 * XMLHttpRequest sends the file, with the session cookie like every call.
 */
import { ApiError, type Problem, type UploadResult } from "@townos/client";

/** PUTs `file` to `url`; the answer is a volume's UploadResult, or a page's PageInfo. */
export function uploadWithProgress<T = UploadResult>(
  url: string,
  file: Blob,
  onProgress: (sent: number, total: number) => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("PUT", url);
    request.setRequestHeader("content-type", "application/octet-stream");
    request.setRequestHeader("accept", "application/json, application/problem+json");
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    });
    request.addEventListener("load", () => {
      if (request.status >= 200 && request.status < 300) {
        resolve(JSON.parse(request.responseText) as T);
        return;
      }
      reject(new ApiError(problemFrom(request)));
    });
    request.addEventListener("error", () => {
      reject(
        new ApiError({
          type: "urn:town-os:problem:unreachable",
          title: "Cannot reach Town OS",
          status: 0,
          detail: "the upload was cut off",
          code: "unreachable",
        }),
      );
    });
    request.send(file);
  });
}

/** The daemon's problem from a failed request, or one made of its status line. */
function problemFrom(request: XMLHttpRequest): Problem {
  try {
    const parsed = JSON.parse(request.responseText) as Partial<Problem>;
    if (typeof parsed.title === "string" && typeof parsed.code === "string") {
      return { type: "about:blank", detail: "", status: request.status, ...parsed } as Problem;
    }
  } catch {
    // Not JSON: a proxy's page, say.
  }
  return {
    type: "about:blank",
    title: request.statusText || "Upload failed",
    status: request.status,
    detail: request.responseText.slice(0, 500),
    code: "unknown",
  };
}
