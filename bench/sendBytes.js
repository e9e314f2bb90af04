// Writes COUNT bytes to a writable stream in 256 KiB chunks, as fast as it drains, then calls
// `then`: the benchmark's bulk sender, for the backend's stream and the client's upload.
const chunk = Buffer.alloc(256 * 1024, "x");

module.exports = function sendBytes(stream, count, then) {
    let left = count;
    const pump = () => {
        while (left > 0) {
            const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
            left -= part.length;
            if (!stream.write(part)) return stream.once("drain", pump);
        }
        then();
    };
    pump();
};
