// C++ exceptions under the preloaded library: thrown and caught on two threads, with allocations
// in flight (strings, vectors, the exception objects themselves). The library carries hidden
// stubs of the unwinder's entry points so that it need not load libgcc_s; this program's
// exceptions must still go through its own unwinder (the stubs would abort).
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

static long work(int seed) {
    long n = 0;
    for (int i = 0; i < 20000; i++) {
        try {
            std::vector<std::string> v(3, std::string(40 + i % 50, 'x'));
            if ((i + seed) % 3 == 0) throw std::runtime_error("error " + std::to_string(i));
            n += (long)v.size();
        } catch (const std::exception &e) {
            n += (long)std::string(e.what()).size();
        }
    }
    return n;
}

int main() {
    long a = 0, b = 0;
    std::thread t([&] { a = work(1); });
    b = work(2);
    t.join();
    std::printf("%ld %ld\n", a, b);
    return 0;
}
