// A threaded C++ program: std::string, std::vector and std::map churn on 4 threads through
// operator new (libstdc++ calls malloc). Prints a checksum that must not depend on the allocator.
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

int main() {
    std::vector<unsigned long> sums(4);
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; t++) {
        ts.emplace_back([t, &sums] {
            unsigned long sum = 0;
            for (int round = 0; round < 50; round++) {
                std::map<int, std::string> m;
                for (int i = 0; i < 2000; i++) m[i * 7 % 1999] = std::string(i % 200 + 1, char('a' + (i + t) % 26));
                for (auto &kv : m) sum += kv.second.size() * kv.first;
                std::vector<std::vector<int>> vs(300);
                for (int i = 0; i < 300; i++) vs[i].resize(i * 3 + 1, i);
                for (auto &v : vs) sum += v.back();
            }
            sums[t] = sum;
        });
    }
    for (auto &th : ts) th.join();
    for (auto s : sums) std::printf("%lu\n", s);
    return 0;
}
